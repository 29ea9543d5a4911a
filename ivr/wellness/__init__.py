"""Wellness calls: elderly people living alone rung on a schedule; three failed days bring a home visit."""
