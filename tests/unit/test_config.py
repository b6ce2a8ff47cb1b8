import pytest

from helpers.env import FORWARDER, POLLER
from traede_export.config import Env, ForwarderConfig, PollerConfig
from traede_export.errors import ConfigError
from traede_export.redact import mask


def test_defaults() -> None:
    cfg = PollerConfig.from_env(POLLER)
    assert cfg.traede.api_url == "https://api.traede.com"
    assert cfg.export.page_size == 60
    assert (cfg.large.bucket, cfg.large.threshold) == ("large-orders", 262_144)
    assert not cfg.export.include_open and not cfg.export.include_closed
    fwd = ForwarderConfig.from_env(FORWARDER)
    assert fwd.concurrency == 10 and not fwd.conflict_is_delivered and fwd.target_credentials_secret is None
    assert ForwarderConfig.from_env({**FORWARDER, Env.TARGET_CONFLICT_IS_DELIVERED: "true"}).conflict_is_delivered


def test_reads_export_options() -> None:
    cfg = PollerConfig.from_env(
        {
            **POLLER,
            Env.EXPORT_INCLUDE_OPEN: "1",
            Env.EXPORT_INCLUDE_CLOSED: "true",
            Env.EXPORT_INCLUDES: "lines, supplier",
            Env.EXPORT_FILTER_GROUPS: '[{"filters":[{"key":"updated_at","operator":"gte","value":"2026-01-01"}]}]',
        }
    )
    assert cfg.export.include_open and cfg.export.include_closed
    assert cfg.export.includes == ("lines", "supplier")
    assert cfg.export.filter_groups[0].filters[0].operator == "gte"


@pytest.mark.parametrize(
    ("change", "names"),
    [
        ({Env.TRAEDE_SYSTEM_ID: ""}, [Env.TRAEDE_SYSTEM_ID]),
        ({Env.QUEUE_URL: "not a url"}, [Env.QUEUE_URL]),
        ({Env.EXPORT_INCLUDE_OPEN: "maybe"}, [Env.EXPORT_INCLUDE_OPEN]),
        ({Env.EXPORT_INCLUDES: "lines,suppliers"}, [Env.EXPORT_INCLUDES]),
        ({Env.EXPORT_FILTER_GROUPS: "{not json"}, [Env.EXPORT_FILTER_GROUPS]),
        (
            {Env.EXPORT_FILTER_GROUPS: '[{"filters":[{"key":"a","operator":"zz","value":1}]}]'},
            [Env.EXPORT_FILTER_GROUPS],
        ),
        ({Env.EXPORT_PAGE_SIZE: "61"}, [Env.EXPORT_PAGE_SIZE]),
        ({Env.IN_FLIGHT_LEASE_SECONDS: "soon"}, [Env.IN_FLIGHT_LEASE_SECONDS]),
        ({Env.TRAEDE_API_URL: "ftp://x"}, [Env.TRAEDE_API_URL]),
        ({Env.LEDGER_TABLE: "", Env.TRAEDE_CREDENTIALS_SECRET: ""}, [Env.LEDGER_TABLE, Env.TRAEDE_CREDENTIALS_SECRET]),
        ({Env.LARGE_ORDER_BUCKET: ""}, [Env.LARGE_ORDER_BUCKET]),
        # Above 256 KiB a batch of 10 could exceed Lambda's 6 MB payload (template.yaml has the arithmetic).
        ({Env.LARGE_ORDER_THRESHOLD_BYTES: "262145"}, [Env.LARGE_ORDER_THRESHOLD_BYTES]),
        ({Env.LARGE_ORDER_THRESHOLD_BYTES: "1MiB"}, [Env.LARGE_ORDER_THRESHOLD_BYTES]),
        ({Env.LARGE_ORDER_THRESHOLD_BYTES: "10"}, [Env.LARGE_ORDER_THRESHOLD_BYTES]),
    ],
)
def test_poller_errors_name_every_bad_variable(change: dict[str, str], names: list[str]) -> None:
    with pytest.raises(ConfigError) as info:
        PollerConfig.from_env({**POLLER, **change})
    for name in names:
        assert name in str(info.value)


@pytest.mark.parametrize(
    ("change", "name"),
    [
        ({Env.TARGET_URL: ""}, Env.TARGET_URL),
        ({Env.FORWARD_CONCURRENCY: "0"}, Env.FORWARD_CONCURRENCY),
        ({Env.TARGET_CONFLICT_IS_DELIVERED: "perhaps"}, Env.TARGET_CONFLICT_IS_DELIVERED),
        ({Env.HTTP_READ_TIMEOUT: "-1"}, Env.HTTP_READ_TIMEOUT),
        ({Env.DLQ_URL: ""}, Env.DLQ_URL),
        ({Env.LARGE_ORDER_BUCKET: ""}, Env.LARGE_ORDER_BUCKET),
        ({Env.LARGE_ORDER_THRESHOLD_BYTES: "300000"}, Env.LARGE_ORDER_THRESHOLD_BYTES),
    ],
)
def test_forwarder_errors_name_the_variable(change: dict[str, str], name: str) -> None:
    with pytest.raises(ConfigError, match=name):
        ForwarderConfig.from_env({**FORWARDER, **change})


def test_empty_environment_names_each_required_variable() -> None:
    with pytest.raises(ConfigError) as info:
        PollerConfig.from_env({})
    assert str(info.value).count("is required") == 6


@pytest.mark.parametrize(
    "url",
    [
        "https://erp:s3cretpw@erp.example/orders",
        "ftp://erp:s3cretpw@erp.example/x",
        "https//erp:s3cretpw@erp.example/orders",  # the scheme separator mistyped: no netloc at all
        "https:/erp:s3cretpw@erp.example/orders",
        "https://erp:s3cretpw/x@erp.example/orders",  # a "/" in the password moves the "@" into the path
        "https://erp:s3cretpw?x@erp.example/orders",
        "https://erp:s3cretpw#x@erp.example/orders",
    ],
)
def test_a_url_with_credentials_is_refused_without_echoing_them(url: str) -> None:
    # Credentials belong in the secret: an environment value is visible to anyone who can read the function.
    with pytest.raises(ConfigError, match=Env.TARGET_URL) as info:
        ForwarderConfig.from_env({**FORWARDER, Env.TARGET_URL: url})
    assert "s3cretpw" not in str(info.value)


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("htps://erp.example/CANARYscheme1/orders", "must start with http:// or https://"),
        ("erpuser:CANARYscheme2", "must start with http:// or https://"),  # a pasted credential, no URL at all
        ("https:///orders/CANARYhost3", "must name a host"),
    ],
)
def test_a_url_that_is_not_http_is_named_but_never_shown(url: str, problem: str) -> None:
    # Any part of the value may be a secret (a pasted user:password, a token in the path): none is
    # quoted. Canaries of its own: none is registered for masking, so only not echoing keeps them out.
    with pytest.raises(ConfigError, match=problem) as info:
        ForwarderConfig.from_env({**FORWARDER, Env.TARGET_URL: url})
    assert Env.TARGET_URL in str(info.value) and "CANARY" not in str(info.value) and "erp" not in str(info.value)


def test_an_unparseable_url_is_a_configuration_error() -> None:
    with pytest.raises(ConfigError, match=Env.TARGET_URL):
        ForwarderConfig.from_env({**FORWARDER, Env.TARGET_URL: "https://[::1/orders"})


def test_the_values_of_a_url_query_and_fragment_are_masked_but_its_placeholders() -> None:
    # A credential in the query (an Azure Functions `code`, a SAS `sig`) is masked like a password;
    # the URL does not say which value is one. Canaries of their own: the registry is process-wide.
    url = "https://erp.example.com/po/{id}?code=CANARYq%2Bcode41&ref={order_number}&sig=CANARYsig42#k=CANARYfrag43"
    ForwarderConfig.from_env({**FORWARDER, Env.TARGET_URL: url})
    PollerConfig.from_env({**POLLER, Env.TRAEDE_API_URL: "https://api.traede.test?CANARYbare44"})
    quoted = "code=CANARYq%2Bcode41 (CANARYq+code41) sig=CANARYsig42 k=CANARYfrag43 CANARYbare44 {order_number}"
    assert mask(quoted) == "code=*** (***) sig=*** k=*** *** {order_number}"
