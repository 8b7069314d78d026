"""The local dashboard: static page and JSON API served by `magpie serve`."""
