"""What every dataset kind (rsna, lidc, table) writes, written by one module.

- :mod:`frugalmed.dataset.outputs`: the output paths of a dataset (``results/data/{name}/...``).
- :mod:`frugalmed.dataset.writer`: the row-aligned uint8 ``.npy`` arrays (appended row by row,
  published atomically, flat memory), the manifest, rejects.csv and selection.json.
- :mod:`frugalmed.dataset.splits`: the split column -- assigned by patient, or given by the user
  and checked.
- :mod:`frugalmed.dataset.parallel`: an order-keeping process pool with a bounded number of
  results in flight (memory stays flat however many inputs there are).

The kinds themselves (frugalmed.rsna, frugalmed.lidc, frugalmed.table) only decide which rows
exist, what their pixels are and why an input is rejected.
"""
