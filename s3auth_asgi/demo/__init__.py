"""The demo: a small Starlette app with the auth sub-app at /auth and one HTML page at /,
on the embedded file:// store (`s3auth demo`, `make demo`).

`config` holds no web framework, so the CLI can point its other commands at the demo's
store (`s3auth --demo user create ...`); `app` builds the application.
"""
