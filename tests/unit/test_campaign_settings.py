"""The campaign settings: the throttle, the body limit and the host storage campaigns use."""

from __future__ import annotations

import pytest

from mms_tracker.settings import Settings, SettingsError
from tests.unit.test_settings import with_


def test_campaigns_default_to_ten_requests_per_second_and_are_off_without_host_storage() -> None:
    settings = Settings.from_environment(with_())
    assert settings.campaign_sends_per_second == 10.0
    assert settings.campaign_max_request_bytes == 8 * 1024 * 1024
    assert (settings.campaign_storage_connection_string, settings.campaign_storage_account) == (None, None)


def test_development_storage_is_azurite_on_its_standard_ports() -> None:
    settings = Settings.from_environment(with_(AzureWebJobsStorage="UseDevelopmentStorage=true"))
    assert settings.campaign_storage_connection_string is not None
    assert "QueueEndpoint=http://127.0.0.1:10001/devstoreaccount1" in settings.campaign_storage_connection_string
    assert "BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1" in settings.campaign_storage_connection_string


def test_an_account_name_selects_the_managed_identity() -> None:
    settings = Settings.from_environment(with_(AzureWebJobsStorage__accountName="stexample"))
    assert (settings.campaign_storage_connection_string, settings.campaign_storage_account) == (None, "stexample")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CAMPAIGN_SENDS_PER_SECOND", "0"),
        ("CAMPAIGN_SENDS_PER_SECOND", "fast"),
        ("CAMPAIGN_MAX_REQUEST_BYTES", "12.5"),
        ("AzureWebJobsStorage", "not a connection string"),
        ("AzureWebJobsStorage__accountName", "Not_An_Account"),
    ],
)
def test_a_malformed_campaign_setting_is_named(name: str, value: str) -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_environment(with_(**{name: value}))
    assert set(raised.value.problems) == {name}
    assert len(value) < 2 or value not in str(raised.value)  # never echoed
