"""A URL variable with user info is refused at cold start without echoing any of it (review of issue 21).

Both URLs pass the template's AllowedPattern for TargetUrl (`^https://[^\\s/{}]+(/[^\\s]*)?$`).
"""

from __future__ import annotations

import pytest

from traede_export.config import ConfigError, Env, ForwarderConfig, PollerConfig

PASSWORD = "CANARYwide83"
FORWARDER = {
    Env.TRAEDE_SYSTEM_ID: "erp",
    Env.TRAEDE_CREDENTIALS_SECRET: "traede/creds",
    Env.TARGET_URL: "https://erp.example.com/orders",
    Env.DLQ_URL: "https://sqs.eu-west-1.amazonaws.com/1/dlq",
    Env.LEDGER_TABLE: "ledger",
    Env.LARGE_ORDER_BUCKET: "large-orders",
}
POLLER = {**FORWARDER, Env.QUEUE_URL: "https://sqs.eu-west-1.amazonaws.com/1/q"}


# A full-width (U+FF20) or small (U+FE6B) commercial at, as an IME or a pasted document gives it:
# urlsplit's NFKC check turns it into "@" and raises, and the scheme error quotes the whole URL.
@pytest.mark.parametrize("at", ["\uff20", "\ufe6b"])
@pytest.mark.parametrize(
    ("variable", "config", "env"),
    [
        (Env.TARGET_URL, ForwarderConfig, FORWARDER),
        (Env.TRAEDE_API_URL, PollerConfig, POLLER),
    ],
)
def test_a_compatibility_at_sign_does_not_reveal_the_password(
    at: str, variable: str, config: type[ForwarderConfig] | type[PollerConfig], env: dict[str, str]
) -> None:
    url = f"https://erp-user:{PASSWORD}{at}erp.example.com/orders"
    with pytest.raises(ConfigError, match=variable) as refused:
        config.from_env({**env, variable: url})
    assert PASSWORD not in str(refused.value)


def test_braces_in_a_password_are_not_quoted_as_placeholder_names() -> None:
    # The "/" keeps the host part of the CloudFormation pattern brace-free; the password is "p/{ss-CANARYwide83}".
    url = f"https://erp-user:p/{{ss-{PASSWORD}}}@erp.example.com/orders"
    with pytest.raises(ConfigError, match="must not carry credentials") as refused:
        ForwarderConfig.from_env({**FORWARDER, Env.TARGET_URL: url})
    assert PASSWORD not in str(refused.value)
