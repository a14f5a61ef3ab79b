"""Sign-in pages and the user management Admins do."""

import secrets

from django.contrib import messages
from django.contrib.auth import get_user_model, update_session_auth_hash
from django.contrib.auth import views as auth_views
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST, require_safe

from accounts import sessions, throttle
from accounts.forms import NewPasswordForm, UserCreateForm, UserUpdateForm
from accounts.roles import Role, role_required
from audit import audit

User = get_user_model()


class LoginView(auth_views.LoginView):
    """Django's sign-in, throttled by `accounts.throttle`: after too many failures the form
    answers 429 with how long to wait, without checking the password at all."""

    template_name = "accounts/login.html"
    redirect_authenticated_user = True

    def post(self, request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        attempt = throttle.begin_attempt(
            request.POST.get("username", ""), throttle.client_address(request)
        )
        if isinstance(attempt, throttle.Cooloff):
            return self.refuse(request, attempt)
        response = super().post(request, *args, **kwargs)
        if request.user.is_authenticated:
            throttle.succeeded(attempt)
            return response
        cooloff = throttle.failed(attempt)
        return response if cooloff is None else self.refuse(request, cooloff)

    def refuse(self, request: HttpRequest, cooloff: throttle.Cooloff) -> HttpResponse:
        return render(
            request, "accounts/login_throttled.html", {"minutes": cooloff.minutes}, status=429
        )


class LogoutView(auth_views.LogoutView):
    """Signing out ends the user's sessions in every browser, not only this one."""

    def post(self, request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        if request.user.is_authenticated:
            sessions.end_sessions(request.user, keep=request.session.session_key)
        return super().post(request, *args, **kwargs)


@sensitive_post_parameters()
def password_change(request: HttpRequest) -> HttpResponse:
    """Choose a new password; required first thing after signing in with a one-time password."""
    form = NewPasswordForm(request.user, request.POST or None)
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            user = form.save()
        update_session_auth_hash(request, user)  # keep this session, under a new key
        sessions.end_sessions(user, keep=request.session.session_key)
        sessions.remember(user, request.session.session_key)
        messages.success(request, "Your password is changed.")
        return redirect("home")
    return render(request, "accounts/password_change.html", {"form": form})


def one_time_password() -> str:
    """A password to hand over once; the user must replace it at first sign-in."""
    return secrets.token_urlsafe(12)


@require_safe
@role_required(Role.ADMIN)
def user_list(request: HttpRequest) -> HttpResponse:
    users = User.objects.prefetch_related("groups").order_by("username")
    return render(request, "accounts/user_list.html", {"users": users})


@role_required(Role.ADMIN)
@sensitive_post_parameters()
def user_create(request: HttpRequest) -> HttpResponse:
    form = UserCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        password = one_time_password()
        with transaction.atomic():
            user = form.save(commit=False)
            user.set_password(password)
            user.must_change_password = True
            user.save()
            user.set_role(Role(form.cleaned_data["role"]))
            audit.record(user, "update", before={}, after={"role": user.role.label})
        return render(
            request,
            "accounts/one_time_password.html",
            {"account": user, "password": password, "created": True},
        )
    return render(request, "accounts/user_form.html", {"form": form, "creating": True})


@role_required(Role.ADMIN)
def user_update(request: HttpRequest, pk: int) -> HttpResponse:
    account = get_object_or_404(User, pk=pk)
    form = UserUpdateForm(
        request.POST or None,
        instance=account,
        initial={"role": account.role.value if account.role else Role.VIEWER.value},
    )
    if request.method == "POST" and form.is_valid():
        new_role = Role(form.cleaned_data["role"])
        if account == request.user and (
            new_role < Role.ADMIN or not form.cleaned_data["is_active"]
        ):
            form.add_error(None, "You cannot lower your own role or lock yourself out.")
        else:
            old_role = account.role.label if account.role else "none"
            with transaction.atomic():
                form.save()
                if not account.is_superuser:
                    account.set_role(new_role)
                if old_role != new_role.label:
                    audit.record(account, "update", {"role": old_role}, {"role": new_role.label})
            if not account.is_active:
                sessions.end_sessions(account)  # a locked account is signed out everywhere
            messages.success(request, f"{account.username} is saved.")
            return redirect("accounts:user_list")
    return render(request, "accounts/user_form.html", {"form": form, "account": account})


@require_POST
@role_required(Role.ADMIN)
def user_reset_password(request: HttpRequest, pk: int) -> HttpResponse:
    """Give a user a new one-time password, shown once to the Admin who asked."""
    account = get_object_or_404(User, pk=pk)
    if account == request.user:
        raise PermissionDenied("Change your own password from your account menu.")
    password = one_time_password()
    with transaction.atomic():
        account.set_password(password)
        account.must_change_password = True
        account.save()
    sessions.end_sessions(account)
    return render(
        request, "accounts/one_time_password.html", {"account": account, "password": password}
    )
