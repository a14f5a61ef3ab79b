"""In a real browser, each role signs in and sees exactly the navigation it may use."""

import pytest

from accounts.context_processors import NAVIGATION
from tests.conftest import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

EXPECTED = {
    "viewer": ["Environments", "Models", "Endpoints", "Model cards", "Insights"],
    "engineer": ["Environments", "Models", "Endpoints", "Model cards", "Playground", "Insights"],
    "deployer": [
        *["Environments", "Models", "Endpoints", "Model cards", "Playground", "Insights"],
        "Alerts",
    ],
    "admin": [section.label for section in NAVIGATION],
}


@pytest.mark.parametrize("role", list(EXPECTED))
def test_each_role_signs_in_and_sees_its_navigation(page, user_for, role) -> None:
    user = user_for(role)

    sign_in(page, user.username)

    page.wait_for_selector("nav.mainnav")
    labels = page.locator("nav.mainnav ul a").all_inner_texts()
    assert labels == EXPECTED[role]
    assert page.locator(".usermenu .badge").inner_text() == role.capitalize()
    for label in labels:  # every link offered opens
        page.locator("nav.mainnav ul a", has_text=label).first.click()
        page.wait_for_load_state()
        assert page.locator("h1").first.is_visible()
        assert "Not allowed" not in page.locator("h1").first.inner_text()


def test_a_forbidden_page_says_which_role_it_needs(page, user_for) -> None:
    sign_in(page, user_for("viewer").username)
    page.wait_for_selector("nav.mainnav")

    response = page.goto("/playground/")

    assert response.status == 403
    page.console_problems.remove(
        "Failed to load resource: the server responded with a status of 403 (Forbidden)"
    )
    assert "needs the Engineer role" in page.locator("main").inner_text()


def test_navigation_folds_into_a_menu_on_a_phone(page, user_for) -> None:
    page.set_viewport_size({"width": 390, "height": 800})
    sign_in(page, user_for("admin").username)

    assert not page.locator("nav.mainnav").is_visible()
    page.locator("label.nav-toggle-label").click()
    assert page.locator("nav.mainnav a", has_text="Environments").is_visible()


def test_wrong_password_shows_a_clear_message(page, user_for) -> None:
    sign_in(page, user_for("viewer").username, password="not the password at all")

    assert "Please enter a correct username and password" in page.locator(".alert").inner_text()
