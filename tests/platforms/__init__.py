"""The platform checks: a package, so that its conftest is `platforms.conftest`, not a second `conftest`."""
