"""An append-only record of every change anyone makes: who, when, what, before and after."""
