"""The run forms the Prefect UI builds from the flows' parameter schemas: every field explains
itself, choices are enums (dropdowns), and bad values are rejected by validation before any
work."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from recpipe.flows.features import features_flow
from recpipe.flows.ingest import ingest_flow
from recpipe.flows.pipeline import run_flow
from recpipe.flows.recommend import recommend_flow
from recpipe.flows.train import train_flow
from recpipe.params import RecommendParams, TrainParams

FLOWS = [ingest_flow, features_flow, train_flow, recommend_flow, run_flow]


def fields(schema: dict, definitions: dict, path: str = ""):
    """(dotted path, property schema) of every leaf field, following $refs."""
    for name, prop in schema.get("properties", {}).items():
        ref = prop.get("$ref") or next(
            (a["$ref"] for a in prop.get("anyOf", []) + prop.get("allOf", []) if "$ref" in a),
            None,
        )
        if ref:
            target = definitions[ref.rsplit("/", 1)[-1]]
            if "properties" in target:
                yield from fields(target, definitions, f"{path}{name}.")
                continue
        yield f"{path}{name}", prop


@pytest.mark.parametrize("flow", FLOWS, ids=lambda f: f.name)
def test_every_form_field_has_a_description(flow):
    schema = flow.parameters.model_dump()
    leaves = list(fields({"properties": schema["properties"]}, schema["definitions"]))
    missing = [path for path, prop in leaves if not prop.get("description")]
    assert leaves and missing == [], missing


@pytest.mark.parametrize(
    ("flow", "field", "choices"),
    [
        (recommend_flow, "params.repurchase", ["auto", "exclude", "ranker"]),
        (features_flow, "params.snapshot", ["serve", "train", "eval"]),
    ],
)
def test_choices_are_enums(flow, field, choices):
    schema = flow.parameters.model_dump()
    prop = dict(fields({"properties": schema["properties"]}, schema["definitions"]))[field]
    enum = prop.get("enum") or schema["definitions"][prop["$ref"].rsplit("/", 1)[-1]]["enum"]
    assert enum == choices


@pytest.mark.parametrize(
    ("model", "values"),
    [
        (RecommendParams, {"top_k": 0}),
        (RecommendParams, {"repurchase": "sometimes"}),
        (RecommendParams, {"model_version": "../../x"}),
        (TrainParams, {"als": {"factors": -1}}),
        (TrainParams, {"label_horizon_days": 0}),
    ],
)
def test_bad_form_values_fail_validation(model, values):
    with pytest.raises(ValidationError):
        model(**values)
