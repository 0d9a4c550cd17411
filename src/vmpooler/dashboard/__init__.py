"""The dashboard: a static page (HTML, CSS, JS and a vendored chart library) the API serves; no logic here."""
