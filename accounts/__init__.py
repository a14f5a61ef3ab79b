"""Who may do what: users, the four roles, sign-in rules and the user management Admins do."""
