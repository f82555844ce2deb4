"""The record contract: Parquet schema and datasets features agree, rows round-trip, sizes and checks (D2, R2, R8)."""

from __future__ import annotations

import dataclasses
import io
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from ctxgen.dataset.arrow import RowError, arrow_schema, hf_features, record_to_row, row_to_record, schema_document
from ctxgen.dataset.checks import check_record
from ctxgen.dataset.record import SCHEMA_VERSION, ImageData, InstanceRecord, Record, scale_box, training_canvas
from ctxgen.dataset.synthetic import synthetic_record


def png(w: int, h: int, mode: str = "RGBA", value: int = 255) -> ImageData:
    buf = io.BytesIO()
    Image.new(mode, (w, h), (200, 10, 10, value) if mode == "RGBA" else value).save(buf, "PNG")
    return ImageData(buf.getvalue(), f"{mode}-{w}x{h}.png")


def simple(**changes) -> Record:
    inst = InstanceRecord(image=png(40, 30), mask=None, box=(10.0, 10.0, 90.0, 70.0), label="thing")
    rec = Record(id="r1", subset="basic", prompt="a thing", target=png(256, 256, "RGB", 128), instances=(inst,))
    return dataclasses.replace(rec, **changes)


def test_arrow_schema_is_the_datasets_features_schema():
    datasets = pytest.importorskip("datasets")
    features = datasets.Features.from_dict(hf_features())
    assert features.arrow_schema.remove_metadata() == arrow_schema().remove_metadata()
    meta = arrow_schema().metadata
    assert json.loads(meta[b"huggingface"])["info"]["features"] == hf_features()
    assert json.loads(meta[b"ctxgen"]) == {"format": "ctxgen-dataset", "schema_version": SCHEMA_VERSION}


def test_schema_document_lists_every_column_and_instance_field():
    doc = schema_document()
    assert [c["name"] for c in doc["columns"]] == arrow_schema().names
    assert {f["name"] for f in doc["instance_fields"]} == {f.name for f in dataclasses.fields(InstanceRecord)}
    assert doc["schema_version"] == SCHEMA_VERSION and all(c["description"] for c in doc["columns"])


@pytest.mark.parametrize("index", [0, 1, 3])
def test_rows_round_trip_every_field(index):
    rec = synthetic_record(index)
    assert row_to_record(record_to_row(rec)) == rec
    full = dataclasses.replace(rec, layout=png(64, 64), fit="image", ica="paper", metadata={"a": [1, {"b": None}]},
                               instances=(dataclasses.replace(rec.instances[0], loc_point=(3.5, 4.0), z=2,
                                                              fit="distort"),) + rec.instances[1:])
    assert row_to_record(record_to_row(full)) == full


def test_bad_rows_name_their_field():
    row = record_to_row(simple())
    with pytest.raises(RowError, match="schema_version: 2 is not 1"):
        row_to_record({**row, "schema_version": 2})
    with pytest.raises(RowError, match=r"^target: no image"):
        row_to_record({**row, "target": None})
    with pytest.raises(RowError, match=r"instances\[0\]\.image: no image bytes"):
        row_to_record({**row, "instances": [{**row["instances"][0], "image": {"bytes": b"", "path": "x"}}]})
    with pytest.raises(RowError, match=r"instances\[0\]\.box: needs 4 finite"):
        row_to_record({**row, "instances": [{**row["instances"][0], "box": [1.0, 2.0, float("nan"), 4.0]}]})
    with pytest.raises(RowError, match="metadata: not valid JSON"):
        row_to_record({**row, "metadata": "{"})


@settings(max_examples=200, deadline=None)
@given(w=st.integers(1, 9000), h=st.integers(1, 9000))
def test_training_canvas_is_a_scene_size_close_to_the_aspect(w, h):
    cw, ch = training_canvas(w, h)
    assert cw % 16 == 0 and ch % 16 == 0 and 256 <= cw <= 2048 and 256 <= ch <= 2048
    if max(w, h) / min(w, h) <= 4:  # aspect kept within rounding when the limits allow it
        assert abs(cw / ch - w / h) / (w / h) < 0.1


def test_training_canvas_examples_and_exact_box_scaling():
    assert training_canvas(1024, 1024) == (1024, 1024)
    assert training_canvas(256, 192) == (336, 256)
    assert training_canvas(4000, 3000) == (2048, 1536)
    box = (0.1, 0.2, 100.3, 77.7)
    assert scale_box(box, (256, 192), (256, 192)) == box
    assert scale_box(box, (100, 100), (200, 50)) == pytest.approx((0.2, 0.1, 200.6, 38.85))


def test_size_reads_the_header_and_applies_exif_orientation():
    im = Image.new("RGB", (60, 20), (10, 20, 30))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90: displayed 20 x 60
    buf = io.BytesIO()
    im.save(buf, "JPEG", exif=exif)
    data = ImageData(buf.getvalue(), "rot.jpg")
    assert data.size() == (20, 60)
    assert data.decode().shape == (60, 20, 3)


def test_a_valid_record_has_no_problems_and_every_bad_field_is_named():
    assert check_record(simple()) == []
    bad_inst = InstanceRecord(image=png(40, 30, "RGB", 50), mask=png(10, 10, "L"), box=(200.0, 10.0, 300.0, 20.0),
                              kind="person", valid_box=(0.0, 0.0, 50.0, 5.0))
    rec = simple(instances=(bad_inst, InstanceRecord(image=png(40, 30, "RGBA", 0), mask=None, box=(1, 1, 2, 2))),
                 prompt=" ")
    problems = {p.field: p for p in check_record(rec)}
    assert problems["prompt"].message == "must not be empty"
    assert problems["instances[0].mask"].reason == "mask-size"
    assert problems["instances[0].box"].reason == "box-outside"
    assert "not one of object, face" in problems["instances[0].kind"].message
    assert problems["instances[0].valid_box"].reason == "box-outside"
    assert problems["instances[1].image"].reason == "empty-mask"


def test_checks_cover_the_canvas_pixel_cap_and_truncation(monkeypatch):
    tiny = simple(instances=(InstanceRecord(image=png(40, 30), mask=None, box=(10.0, 10.0, 14.0, 60.0)),))
    assert [p.reason for p in check_record(tiny)] == ["box-too-small"]
    assert check_record(tiny, canvas=(2048, 2048)) == []  # 4 px at 256 -> 32 px at 2048
    monkeypatch.setenv("CTXGEN_MAX_PIXELS", "1000")
    assert {p.reason for p in check_record(simple())} == {"too-large"}
    monkeypatch.delenv("CTXGEN_MAX_PIXELS")
    whole = synthetic_record(0).target.data
    cut = simple(target=ImageData(whole[: len(whole) // 2], "half.jpg"))
    assert check_record(cut, pixels=False) == []  # the header is intact ...
    assert [p.reason for p in check_record(cut)] == ["unreadable"]  # ... the pixels are not


def test_synthetic_records_are_valid_and_exact():
    for index in range(6):
        rec = synthetic_record(index)
        assert check_record(rec) == []
        assert 2 <= len(rec.instances) <= 4
        target = rec.target.decode()
        for inst in rec.instances:
            alpha = inst.mask.decode_mask() if inst.mask is not None else inst.image.decode()[..., 3]
            ys, xs = np.nonzero(alpha >= 128)
            x1, y1, x2, y2 = (int(v) for v in inst.box)
            assert (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) == (0, 0, x2 - x1, y2 - y1)  # tight box
            assert alpha.shape == (y2 - y1, x2 - x1) and y2 <= target.shape[0] and x2 <= target.shape[1]
    assert synthetic_record(5) == synthetic_record(5) and synthetic_record(5, seed=1) != synthetic_record(5)
    kinds = {inst.kind for i in range(4) for inst in synthetic_record(i).instances}
    assert kinds == {"object", "face"}
