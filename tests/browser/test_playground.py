"""In a real browser, an Engineer prompts the demo LLM and watches tokens arrive before the
answer ends (and stops one), invokes a multi-model endpoint by two TargetModel names, and
compares two targets side by side. The endpoints run on a real local runtime."""

import importlib.util
import json
import time

import pytest

from playground.models import Invocation
from tests.conftest import sign_in
from tests.playground.conftest import deployed  # noqa: F401 (a fixture)

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.django_db(transaction=True)]
LLM_MISSING = importlib.util.find_spec("llama_cpp") is None


def invoke_and_wait(page) -> None:
    """Press Invoke and wait until a new result replaces the one shown."""
    shown = page.locator("#result .pg-result")
    selector = "#result .pg-result"
    if shown.count():
        selector += f":not(#{shown.get_attribute('id')})"
    page.click("#invoke-form button[type=submit]")
    page.wait_for_selector(selector)


def shown_prediction(page) -> float:
    return json.loads(page.locator("#result .pg-json").inner_text())["predictions"][0]


def test_engineer_invokes_two_target_models_and_compares_them(
    page,
    user_for,
    deployed,  # noqa: F811
    settings,
):
    diabetes = deployed("diabetes")["diabetes"]
    backend = diabetes.environment.backend
    sign_in(page, user_for("engineer").username)
    page.click("nav.mainnav a:text-is('Playground')")
    page.wait_for_load_state()  # htmx listens for the select's change once its script has run

    page.select_option("#pg-endpoint", str(diabetes.pk))
    page.wait_for_selector("#invoke-form input[name=target_model]")
    body = page.input_value("#id_body")
    answers = {}
    for name in ("linear.tar.gz", "lasso.tar.gz"):
        page.fill("#id_target_model", name)
        invoke_and_wait(page)
        answers[name] = shown_prediction(page)
    listed = page.locator("#invoke-form .help code").all_inner_texts()
    # The editor's text travels as a file part: a body beyond the form-field limit still goes.
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 200
    rows = json.loads(body) * 5
    page.fill("#id_body", json.dumps(rows))
    invoke_and_wait(page)
    many = json.loads(page.locator("#result .pg-json").inner_text())["predictions"]
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
    page.click("a.button:text-is('Compare targets')")
    page.click("button:text-is('Send to both')")
    page.wait_for_selector(".pg-compare-side >> nth=1")
    sides = page.locator(".pg-compare-side").all_inner_texts()
    timed = page.locator(".pg-compare-side .pg-timings").count()

    for name, answer in answers.items():
        direct = backend.invoke(
            "diabetes", body.encode(), content_type="application/json", target_model=name
        )
        assert answer == json.loads(direct.body)["predictions"][0]
    assert answers["linear.tar.gz"] != answers["lasso.tar.gz"]
    assert len(json.dumps(rows)) > 200 and many == [answers["lasso.tar.gz"]] * 5
    assert "lasso.tar.gz" in listed and "ridge.tar.gz" in listed
    assert "model lasso.tar.gz" in sides[0] and "model linear.tar.gz" in sides[1]
    assert all("200 OK" in side for side in sides)
    assert timed == 2
    assert Invocation.objects.filter(state="done").count() == 5


@pytest.mark.skipif(LLM_MISSING, reason="llama-cpp-python is optional: make llm installs it")
def test_engineer_watches_llm_tokens_arrive_and_stops_one(page, user_for, deployed):  # noqa: F811
    chat = deployed("chat")["chat"]
    sign_in(page, user_for("engineer").username)
    page.goto(f"/playground/?endpoint={chat.pk}")

    page.fill("#id_prompt", "Count from one to twenty in words.")
    page.fill("#id_max_new_tokens", "96")
    page.click("#chat-send")
    # Text is on the page while the answer is still streaming (marked until it ends).
    page.wait_for_selector(".pg-turn-assistant .pg-turn-text.pg-streaming:not(:empty)")
    partial = page.locator(".pg-turn-assistant .pg-turn-text").inner_text()
    page.wait_for_selector("#chat-result .pg-result[data-state=done]")
    final = page.locator(".pg-turn-assistant .pg-turn-text").first.inner_text()
    timings = page.locator("#chat-result .pg-timings").text_content()

    page.fill("#id_prompt", "Write a long story about a lighthouse keeper.")
    page.fill("#id_max_new_tokens", "512")
    page.click("#chat-send")
    page.wait_for_selector(".pg-turn-assistant >> nth=1 >> .pg-turn-text.pg-streaming:not(:empty)")
    page.click("#chat-stop")
    page.wait_for_selector(".pg-stopped")

    assert partial and final.startswith(partial.strip()[:1]) and len(final) > len(partial)
    assert "First token" in timings and "Tokens/s" in timings
    first = Invocation.objects.filter(mode="stream").order_by("pk").first()
    assert first.state == "done" and first.ttft_ms > 0 and first.tokens > 1
    deadline = time.monotonic() + 30
    while not Invocation.objects.filter(mode="stream", state="stopped").exists():
        assert time.monotonic() < deadline, "the server never saw the Stop"
        time.sleep(0.2)


def test_an_endpoint_chosen_before_htmx_loads_still_opens_its_workbench(
    page,
    user_for,
    deployed,  # noqa: F811
):
    """On a slow network the select can be changed before htmx's script has run; that choice
    must not be lost (it once did nothing at all)."""
    iris = deployed("iris")["iris"]
    sign_in(page, user_for("engineer").username)
    held = []
    page.route("**/htmx*.js", lambda route: held.append(route))  # held until the choice
    page.goto("/playground/", wait_until="commit")
    page.wait_for_selector(f"#pg-endpoint option[value='{iris.pk}']", state="attached")
    page.select_option("#pg-endpoint", str(iris.pk))
    while not held:
        page.wait_for_timeout(20)
    loaded_before_choice = page.evaluate("typeof window.htmx !== 'undefined'")
    held[0].continue_()

    page.wait_for_selector("#invoke-form")
    assert not loaded_before_choice
    assert page.locator(".pg-endpoint-bar").inner_text().count("iris") >= 1
    assert f"endpoint={iris.pk}" in page.url  # hx-push-url, as a choice made later gets
