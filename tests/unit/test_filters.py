from urllib.parse import urlencode

import pytest

from traede_export.filters import encode_filter_groups, parse_filter_groups


def test_encodes_nested_php_style_query() -> None:
    groups = parse_filter_groups(
        [{"or": False, "filters": [{"key": "updated_at", "operator": "gte", "value": "2026-01-01 00:00:00"}]}]
    )
    assert encode_filter_groups(groups) == [
        ("filter_groups[0][or]", "0"),
        ("filter_groups[0][filters][0][key]", "updated_at"),
        ("filter_groups[0][filters][0][operator]", "gte"),
        ("filter_groups[0][filters][0][value]", "2026-01-01 00:00:00"),
        ("filter_groups[0][filters][0][not]", "0"),
    ]


def test_arrays_use_empty_brackets_and_flags_are_numbers() -> None:
    groups = parse_filter_groups(
        [
            {"filters": [{"key": "created_at", "operator": "bt", "value": ["2026-01-01", "2026-02-01"]}]},
            {
                "or": True,
                "filters": [
                    {"key": "status", "operator": "in", "value": ["a", "b", "c"], "not": True},
                    {"key": "id", "operator": "eq", "value": 7},
                ],
            },
        ]
    )
    query = urlencode(encode_filter_groups(groups))
    assert "filter_groups%5B0%5D%5Bfilters%5D%5B0%5D%5Bvalue%5D%5B%5D=2026-01-01" in query
    pairs = encode_filter_groups(groups)
    assert ("filter_groups[1][or]", "1") in pairs
    assert [v for k, v in pairs if k == "filter_groups[1][filters][0][value][]"] == ["a", "b", "c"]
    assert ("filter_groups[1][filters][0][not]", "1") in pairs
    assert ("filter_groups[1][filters][1][value]", "7") in pairs


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"filters": []}, "JSON array"),
        ([{"filters": []}], "no filters"),
        ([{"nope": 1}], "'filters' array"),
        ([{"filters": [{"key": "x", "operator": "like", "value": 1}]}], "operator 'like'"),
        ([{"filters": [{"key": "x", "operator": "in", "value": 1}]}], "array of values"),
        ([{"filters": [{"key": "x", "operator": "bt", "value": [1]}]}], "exactly two"),
        ([{"filters": [{"operator": "eq", "value": 1}]}], "'key'"),
        ([{"or": "yes", "filters": [{"key": "x", "operator": "eq", "value": 1}]}], "'or'"),
    ],
)
def test_rejects_malformed_groups(raw: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_filter_groups(raw)
