from __future__ import annotations

import pytest

from mms_tracker.settings import Settings, SettingsError

GOOD = {
    "ACS_CONNECTION_STRING": "endpoint=https://acs.communication.azure.com/;accesskey=c2VjcmV0LWtleQ==",
    "MMS_SENDERS": "+18004567891, +18005550100",
    "TRACKING_STORAGE_CONNECTION_STRING": "UseDevelopmentStorage=true",
}


def with_(**changes: str | None) -> dict[str, str]:
    env = dict(GOOD)
    for key, value in changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def test_valid_environment_is_read_into_typed_settings() -> None:
    settings = Settings.from_environment(GOOD)
    assert settings.acs_endpoint == "https://acs.communication.azure.com"
    assert settings.acs_access_key is not None and settings.acs_access_key.access_key == b"secret-key"
    assert settings.senders == ("+18004567891", "+18005550100")
    assert settings.default_sender == "+18004567891"
    assert settings.table_prefix == "mms"


def test_acs_endpoint_alone_selects_entra_id_auth() -> None:
    settings = Settings.from_environment(
        with_(ACS_CONNECTION_STRING=None, ACS_ENDPOINT="https://acs.communication.azure.com/")
    )
    assert settings.acs_access_key is None
    assert settings.acs_endpoint == "https://acs.communication.azure.com"


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"ACS_CONNECTION_STRING": None}, "ACS_CONNECTION_STRING"),
        ({"ACS_CONNECTION_STRING": "endpoint=https://x/"}, "ACS_CONNECTION_STRING"),
        ({"ACS_CONNECTION_STRING": "endpoint=https://x/;accesskey=not base64!"}, "ACS_CONNECTION_STRING"),
        ({"ACS_CONNECTION_STRING": None, "ACS_ENDPOINT": "ftp://x"}, "ACS_ENDPOINT"),
        ({"MMS_SENDERS": None}, "MMS_SENDERS"),
        ({"MMS_SENDERS": "+1800,12345"}, "MMS_SENDERS"),
        ({"TRACKING_STORAGE_CONNECTION_STRING": None}, "TRACKING_STORAGE_CONNECTION_STRING"),
        ({"TRACKING_STORAGE_CONNECTION_STRING": "nonsense"}, "TRACKING_STORAGE_CONNECTION_STRING"),
        ({"TRACKING_TABLE_PREFIX": "9bad"}, "TRACKING_TABLE_PREFIX"),
        ({"TRACKING_STORAGE_TIMEOUT_SECONDS": "-1"}, "TRACKING_STORAGE_TIMEOUT_SECONDS"),
        ({"STATUS_EVENTS_ENDPOINT": "topic.westus-1.eventgrid.azure.net"}, "STATUS_EVENTS_ENDPOINT"),
        ({"STATUS_EVENTS_RETRY_WINDOW_MINUTES": "0"}, "STATUS_EVENTS_RETRY_WINDOW_MINUTES"),
        ({"REPORT_MAX_FUTURE_SKEW_SECONDS": "-1"}, "REPORT_MAX_FUTURE_SKEW_SECONDS"),
        ({"REPORT_MAX_FUTURE_SKEW_SECONDS": "86401"}, "REPORT_MAX_FUTURE_SKEW_SECONDS"),
    ],
)
def test_missing_or_malformed_setting_fails_naming_it(changes: dict[str, str | None], named: str) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_environment(with_(**changes))
    assert caught.value.name == named
    assert named in str(caught.value)


def test_settings_error_never_echoes_the_access_key() -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_environment(with_(ACS_CONNECTION_STRING="endpoint=nope;accesskey=c2VjcmV0LWtleQ=="))
    assert "c2VjcmV0LWtleQ" not in str(caught.value)
    assert "c2VjcmV0LWtleQ" not in repr(Settings.from_environment(GOOD))


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e8", "0", "-1"])
@pytest.mark.parametrize(
    "name",
    [
        "TRACKING_STORAGE_TIMEOUT_SECONDS",
        "EXPIRY_WINDOW_HOURS",
        "ACS_TIMEOUT_SECONDS",
        "MMS_MAX_REQUEST_BYTES",
        "MMS_MAX_ATTACHMENT_BYTES",
        "ACS_MAX_ATTEMPTS",
    ],
)
def test_numbers_must_be_finite_and_in_range(name: str, value: str) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_environment(with_(**{name: value}))
    assert set(caught.value.problems) == {name}
    assert "must be a finite number from" in str(caught.value)


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e8", "-1"])
@pytest.mark.parametrize("name", ["ACS_RETRY_MAX_SECONDS", "RETENTION_DAYS", "SEND_RECONCILE_AFTER_SECONDS"])
def test_settings_that_may_be_zero_must_still_be_finite_and_in_range(name: str, value: str) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_environment(with_(**{name: value}))
    assert set(caught.value.problems) == {name}


def test_the_request_size_is_capped_where_an_intent_still_fits_one_transaction() -> None:
    assert Settings.from_environment(with_(MMS_MAX_REQUEST_BYTES=str(3 * 1024 * 1024))).max_request_bytes == 3145728
    with pytest.raises(SettingsError):
        Settings.from_environment(with_(MMS_MAX_REQUEST_BYTES=str(3 * 1024 * 1024 + 1)))


def test_the_send_deadline_is_the_sum_of_its_phases() -> None:
    settings = Settings.from_environment(
        with_(TRACKING_STORAGE_TIMEOUT_SECONDS="10", ACS_RETRY_MAX_SECONDS="30", ACS_TIMEOUT_SECONDS="20")
    )
    assert settings.send_deadline_seconds == 70.0  # docs/api.md, "Sending": 2 x storage + ACS retries + one attempt


def test_the_crash_hook_works_only_when_set_to_1_and_only_against_an_acs_on_this_machine() -> None:
    simulator = "endpoint=http://127.0.0.1:7072/;accesskey=c2VjcmV0LWtleQ=="
    assert Settings.from_environment(GOOD).test_crash_after_acs is False
    on = with_(ACS_CONNECTION_STRING=simulator, MMS_TEST_CRASH_AFTER_ACS="1")
    assert Settings.from_environment(on).test_crash_after_acs is True
    assert Settings.from_environment(on | {"MMS_TEST_CRASH_AFTER_ACS": "yes"}).test_crash_after_acs is False
    assert Settings.from_environment(with_(MMS_TEST_CRASH_AFTER_ACS="1")).test_crash_after_acs is False  # a real ACS


def test_a_whole_number_setting_refuses_a_fraction() -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_environment(with_(ACS_MAX_ATTEMPTS="2.5"))
    assert caught.value.name == "ACS_MAX_ATTEMPTS"


def test_every_bad_setting_is_named_at_once() -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_environment({"EXPIRY_WINDOW_HOURS": "x", "TRACKING_TABLE_PREFIX": "_"})
    assert set(caught.value.problems) == {
        "ACS_CONNECTION_STRING",
        "MMS_SENDERS",
        "TRACKING_STORAGE_CONNECTION_STRING",
        "TRACKING_TABLE_PREFIX",
        "EXPIRY_WINDOW_HOURS",
    }


@pytest.mark.parametrize("sender", ["+1800456789\n1", "+1800456789\u0661", "+18004567891x"])
def test_a_sender_must_be_ascii_e164_throughout(sender: str) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_environment(with_(MMS_SENDERS=sender))
    assert caught.value.name == "MMS_SENDERS"


def test_status_events_are_off_until_a_topic_is_named_and_the_key_is_never_shown() -> None:
    assert Settings.from_environment(GOOD).status_events_endpoint is None
    settings = Settings.from_environment(
        with_(
            STATUS_EVENTS_ENDPOINT="https://topic.westus-1.eventgrid.azure.net/api/events",
            STATUS_EVENTS_KEY="dG9waWMta2V5",
            WEBSITE_SITE_NAME="mms-func-abc",
        )
    )
    assert settings.status_events_endpoint == "https://topic.westus-1.eventgrid.azure.net/api/events"
    assert (settings.status_events_key, settings.app_name) == ("dG9waWMta2V5", "mms-func-abc")
    assert "dG9waWMta2V5" not in repr(settings)


# The connection string rules of azure-monitor-opentelemetry-exporter 1.0.0b58
# (_connection_string_parser.py): key=value pairs, InstrumentationKey a lower-case UUID, Authorization "ikey".
APPI = "InstrumentationKey=00000000-0000-0000-0000-000000000000;IngestionEndpoint=https://westeurope-5.in.applicationinsights.azure.com/"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("APPLICATIONINSIGHTS_CONNECTION_STRING", "InstrumentationKey=not-a-uuid"),
        ("APPLICATIONINSIGHTS_CONNECTION_STRING", "IngestionEndpoint=https://example/"),
        ("APPLICATIONINSIGHTS_CONNECTION_STRING", APPI + ";"),
        ("APPLICATIONINSIGHTS_CONNECTION_STRING", APPI + ";Authorization=aad"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "127.0.0.1:4318"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "ftp://collector:4318"),
    ],
)
def test_a_set_telemetry_setting_must_be_usable(name: str, value: str) -> None:
    with pytest.raises(SettingsError) as error:
        Settings.from_environment(with_(**{name: value}))
    assert list(error.value.problems) == [name]
    assert value not in str(error.value)


def test_telemetry_settings_are_optional_and_accepted_when_well_formed() -> None:
    Settings.from_environment(
        with_(APPLICATIONINSIGHTS_CONNECTION_STRING=APPI, OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:4318")
    )
    Settings.from_environment(with_(APPLICATIONINSIGHTS_CONNECTION_STRING="  ", OTEL_EXPORTER_OTLP_ENDPOINT=""))
