"""Forms Admins use to add people and change their role."""

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import PasswordChangeForm

from accounts.roles import ROLE_DESCRIPTIONS, Role

User = get_user_model()

ROLE_CHOICES = [(role.value, f"{role.label}: {ROLE_DESCRIPTIONS[role]}") for role in Role]


class UserCreateForm(forms.ModelForm):
    """A new user with a role; the portal makes a one-time password for them."""

    role = forms.TypedChoiceField(choices=ROLE_CHOICES, coerce=int, initial=Role.VIEWER.value)

    class Meta:
        model = User
        fields = ["username", "first_name", "last_name", "email"]
        help_texts = {"username": "Letters, digits and @ . + - _ only; at most 150 characters."}

    def clean_username(self) -> str:
        username = self.cleaned_data["username"]
        if User.objects.filter(username__iexact=username).exists():
            raise forms.ValidationError("Someone already has this username. Choose another one.")
        return username


class UserUpdateForm(forms.ModelForm):
    """Name, e-mail, role and whether the account may sign in at all."""

    role = forms.TypedChoiceField(choices=ROLE_CHOICES, coerce=int)

    class Meta:
        model = User
        fields = ["first_name", "last_name", "email", "is_active"]
        labels = {"is_active": "Can sign in"}
        help_texts = {"is_active": "Untick to lock the account without losing its history."}


class NewPasswordForm(PasswordChangeForm):
    """Django's password change, whose success also clears the one-time password flag."""

    def save(self, commit: bool = True) -> User:
        user = super().save(commit=False)
        user.must_change_password = False
        if commit:
            user.save()
        return user
