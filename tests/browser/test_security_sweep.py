"""In a real browser, a polyglot payload goes into every field people (or providers) write, and
every page that shows it stays inert (S3, S4): no dialog, no request the markup would make, no
CSP violation, and the payload is shown as the text it is.

Fields whose rules refuse the payload (names, usernames, e-mail) get it anyway: the form comes
back with an error and the value must be echoed escaped. Values only providers write (failure
reasons, timeline lines, variant names, endpoint names read back from AWS, the alerts made of
them) are stored directly.
"""

from urllib.parse import urlsplit

import pytest
from django.urls import reverse

from accounts.models import User
from alerts.models import Alert
from endpoints.models import Deployment, Endpoint, Event, RegisteredModel
from environments.models import Environment
from tests.conftest import sign_in

pytestmark = [
    pytest.mark.browser,
    pytest.mark.security,
    pytest.mark.django_db(transaction=True),
]

PAYLOAD = (
    '"><img src=x onerror=alert(1)><script>alert(2)</script>'
    '<div hx-get="/" hx-trigger="load">{{7*7}}javascript:alert(3)'
)
# What fits a 63-character name field (the browser cuts longer input) and still breaks out.
SHORT_PAYLOAD = '"><img src=x onerror=alert(4)><b hx-get="/" hx-trigger=load>'

# Elements the payload would create if any of it were rendered as markup.
INJECTED = [
    'img[src="x"]',
    "[onerror]",
    # (The insights endpoint page's own provider-metrics and cost sections load this way.)
    '[hx-trigger="load"]:not(#provider-metrics, #cost)',
    '[hx-get="/"]',
    "script:not([src]):not([type='application/json'])",
    "b[hx-get]",
]

LISTEN_FOR_CSP = """
window.__csp = [];
document.addEventListener('securitypolicyviolation', (event) => {
  window.__csp.push(event.violatedDirective + ' ' + event.blockedURI);
});
"""


class Watch:
    """Everything a page did that injected markup could have caused."""

    def __init__(self, page: object):
        self.page = page
        self.dialogs: list[str] = []
        self.stray: list[str] = []
        page.add_init_script(LISTEN_FOR_CSP)  # runs before the page's own scripts, outside CSP
        page.on("dialog", self.on_dialog)
        page.on("request", self.on_request)

    def on_dialog(self, dialog: object) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def on_request(self, request: object) -> None:
        path = urlsplit(request.url).path
        if request.headers.get("hx-request") and path == "/":
            self.stray.append(f"htmx GET {request.url}")
        if path.endswith("/x") or request.url.startswith("javascript:"):
            self.stray.append(f"{request.resource_type} {request.url}")

    def visit(self, url: str, shows_payload: str | None = None) -> None:
        """Open `url` and check it stayed inert; `shows_payload` must appear in its text."""
        response = self.page.goto(url)
        assert response.status < 500, url
        self.page.wait_for_load_state("networkidle")
        self.check(url, shows_payload)

    def check(self, where: str, shows_payload: str | None = None) -> None:
        for selector in INJECTED:
            assert self.page.locator(selector).count() == 0, f"{selector} injected on {where}"
        assert self.page.evaluate("window.__csp") == [], f"CSP violation on {where}"
        assert self.dialogs == [], f"dialog on {where}"
        assert self.stray == [], f"unexpected requests on {where}"
        if shows_payload:
            text = self.page.inner_text("main")
            assert shows_payload in text, f"the payload is not shown as text on {where}"


def submit(page: object, button: str) -> None:
    page.click(button)
    page.wait_for_load_state("networkidle")


def test_a_polyglot_in_every_field_stays_inert_text_on_every_page(page, user_for) -> None:
    watch = Watch(page)
    admin = user_for("admin")
    sign_in(page, admin.username)
    page.wait_for_load_state("networkidle")

    # Environments: the name refuses it (and echoes it escaped), the description keeps it.
    page.goto(reverse("environments:create"))
    page.fill("#id_name", SHORT_PAYLOAD)
    page.fill("#id_description", PAYLOAD)
    page.fill("#id_bucket", "sweep-bucket")
    submit(page, "main form button[type=submit]")
    watch.check("the environment form with errors")
    assert page.locator("#id_name").input_value() == SHORT_PAYLOAD
    page.fill("#id_name", "sweep-env")
    submit(page, "main form button[type=submit]")
    environment = Environment.objects.get(name="sweep-env")
    assert environment.description == PAYLOAD

    # Users: username and e-mail refuse it, first and last name keep it.
    page.goto(reverse("accounts:user_create"))
    page.fill("#id_username", PAYLOAD)
    page.fill("#id_first_name", PAYLOAD)
    page.fill("#id_last_name", PAYLOAD)
    page.fill("#id_email", PAYLOAD)
    submit(page, "main form button[type=submit]")
    watch.check("the user form with errors")
    page.fill("#id_username", "sweep-user")
    page.fill("#id_email", "sweep@example.com")
    submit(page, "main form button[type=submit]")
    account = User.objects.get(username="sweep-user")
    assert account.first_name == PAYLOAD

    # Models: the name refuses it; description and an environment variable keep it.
    page.goto(reverse("endpoints:model_create"))
    page.select_option("#id_environment", label="sweep-env")
    page.fill("#id_name", SHORT_PAYLOAD)
    page.fill("#id_description", PAYLOAD)
    page.fill("#id_containers-0-image", "sklearn")
    page.fill("#id_containers-0-model_data_url", "s3://sweep-bucket/portal/m/model.tar.gz")
    page.fill("#id_containers-0-environment_variables", f"GREETING={PAYLOAD}")
    submit(page, "main form button[type=submit]")
    watch.check("the model form with errors")
    page.fill("#id_name", "sweep-model")
    submit(page, "main form button[type=submit]")
    model = RegisteredModel.objects.get(name="sweep-model")
    assert model.description == PAYLOAD
    assert model.containers[0]["Environment"]["GREETING"] == PAYLOAD

    # The deploy wizard: the endpoint name refuses it.
    page.goto(reverse("endpoints:create") + f"?model={model.pk}")
    page.fill("#id_name", SHORT_PAYLOAD)
    submit(page, ".wizard-actions button:text-is('Save and continue')")
    watch.check("the wizard with errors")

    # What providers write: an endpoint name read back from AWS, a failure, the timeline.
    endpoint = Endpoint.objects.create(
        environment=environment,
        name=SHORT_PAYLOAD,
        spec={"variants": []},
        status=Endpoint.Status.FAILED,
        failure_reason=PAYLOAD,
        variants_state=[{"name": PAYLOAD, "current": 1, "desired": 1, "weight": 1.0}],
    )
    Deployment.objects.create(
        endpoint=endpoint,
        action=Deployment.Action.CREATE,
        generation=1,
        step=Deployment.Step.FAILED,
        last_error=PAYLOAD,
        raw_error=PAYLOAD + " (raw)",
    )
    Event.objects.create(endpoint=endpoint, kind="error", message=PAYLOAD)
    Alert.objects.create(endpoint=endpoint, kind=Alert.Kind.ATTENTION, text=PAYLOAD)

    pages = [
        (reverse("home"), None),
        (reverse("environments:list"), PAYLOAD),
        (reverse("environments:detail", args=[environment.pk]), PAYLOAD),
        (reverse("environments:update", args=[environment.pk]), None),
        (reverse("accounts:user_list"), PAYLOAD),
        (reverse("accounts:user_update", args=[account.pk]), None),
        (reverse("audit:list"), PAYLOAD),
        (reverse("audit:list") + "?q=%22%3E%3Cimg%20src%3Dx%20onerror%3Dalert(5)%3E", None),
        (reverse("endpoints:model_list"), PAYLOAD),
        (reverse("endpoints:model_detail", args=[model.pk]), PAYLOAD),
        (reverse("endpoints:list"), SHORT_PAYLOAD),
        (reverse("endpoints:detail", args=[endpoint.pk]), PAYLOAD),
        (reverse("modelcards:list"), None),
        (reverse("playground:index"), None),
        (reverse("insights:index"), None),
        (reverse("alerts:list"), PAYLOAD),
    ]
    for url, shows in pages:
        watch.visit(url, shows)

    # Live fragments: an endpoint still creating is polled, and what each poll swaps in must
    # stay as inert as the first render.
    creating = Endpoint.objects.create(
        environment=environment,
        name="sweep-creating",
        spec={"variants": []},
        status=Endpoint.Status.CREATING,
        variants_state=[{"name": PAYLOAD, "current": 0, "desired": 1, "weight": 1.0}],
    )
    Event.objects.create(endpoint=creating, kind="info", message=PAYLOAD)
    for url in (reverse("endpoints:list"), reverse("endpoints:detail", args=[creating.pk])):
        page.goto(url)
        with page.expect_response(lambda answer: answer.request.headers.get("hx-request")):
            pass  # one poll swapped in
        page.wait_for_load_state("networkidle")
        watch.check(f"{url} after a poll")
    watch.visit(reverse("accounts:user_update", args=[account.pk]))
    assert page.locator("#id_first_name").input_value() == PAYLOAD  # kept as typed, inert
