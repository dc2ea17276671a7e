"""The operator's console at /console: server-rendered HTML fragments behind the admin token."""
