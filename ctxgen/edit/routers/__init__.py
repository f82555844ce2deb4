"""The editor's JSON API, one router per resource."""
