"""The Faust application shell: settings, app, topics, metrics, web pages and CLI."""
