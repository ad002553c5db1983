"""Sign-in with Entra ID (``AGENTDASH_AUTH=oauth``), against the OpenID Connect stand-in.

The real browser follows the whole flow: the dashboard sends it to the
provider, a user is picked there, the provider sends it back with a code that
Panel's login handler trades for an ID token, whose signature is checked
against the provider's JWKS and whose ``roles`` and ``groups`` say what the
user may read.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from pipelines import AgentsPipeline, LiveFrames
from pipelines.cache import MemoryFrameCache
from pipelines.sources.local import LocalSource
from tests.oidc_standin import OidcProvider
from tests.ui.conftest import SECRET, PageGuard, ServedApp, make_served_app

pytestmark = pytest.mark.ui

GROUP = "0b6c6a2e-group-of-the-team"


@pytest.fixture(scope="module")
def provider() -> Iterator[OidcProvider]:
    directory = OidcProvider(
        "agentdash-client",
        "the client secret",
        users={
            "carol@tests.example": {"roles": ["viewer"], "groups": [GROUP, "another-group"]},
            "dave@tests.example": {"groups": [GROUP]},  # no app role
        },
    )
    directory.start()
    yield directory
    directory.stop()


@pytest.fixture(scope="module")
def oauth_app(
    tmp_path_factory: pytest.TempPathFactory, provider: OidcProvider
) -> Iterator[tuple[ServedApp, str]]:
    workdir = tmp_path_factory.mktemp("oauth")
    config = workdir / "agentdash.toml"
    app = make_served_app(
        workdir,
        messages=1000,
        days=2,
        AGENTDASH_AUTH="oauth",
        AGENTDASH_OAUTH_KEY=provider.client_id,
        AGENTDASH_OAUTH_SECRET=provider.client_secret,
        AGENTDASH_OAUTH_EXTRA_PARAMS=json.dumps({"tenant": provider.tenant}),
        AGENTDASH_OAUTH_AUTHORITY=provider.authority,
        AGENTDASH_COOKIE_SECRET=SECRET,
    )
    frames = LiveFrames(LocalSource(app.store), MemoryFrameCache())
    team = str(AgentsPipeline(frames=frames).frame["team"].value_counts().index[0])
    config.write_text(f'[teams]\n"{GROUP}" = "{team}"\n')
    app.env["AGENTDASH_CONFIG"] = str(config)
    app.start()
    yield app, team
    app.stop()


def test_a_directory_user_signs_in_and_reads_their_groups_team(
    guarded_page: tuple[Page, PageGuard], oauth_app: tuple[ServedApp, str], provider: OidcProvider
) -> None:
    app, team = oauth_app
    page, _ = guarded_page
    page.goto(f"{app.url}/?tab=agents")
    expect(page.get_by_text("Stand-in directory")).to_be_visible()
    assert page.url.startswith(f"{provider.base}/oauth2/v2.0/authorize?")
    page.get_by_role("button", name="Sign in as carol@tests.example").click()

    expect(page.get_by_text(f"carol@tests.example (viewer, {team})")).to_be_visible()
    frames = LiveFrames(LocalSource(app.store), MemoryFrameCache())
    agents = AgentsPipeline(frames=frames, teams=[team]).frame
    expect(page.locator(".tabulator-row")).to_have_count(len(agents))
    assert provider.tokens_issued >= 1


def test_a_directory_user_without_an_app_role_is_forbidden(
    page: Page, oauth_app: tuple[ServedApp, str]
) -> None:
    app, _ = oauth_app
    page.goto(f"{app.url}/")
    page.get_by_role("button", name="Sign in as dave@tests.example").click()
    expect(page.get_by_text("403")).to_be_visible()
    expect(page.locator(".bk-tab")).to_have_count(0)
