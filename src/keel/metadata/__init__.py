"""Project metadata storage."""
