"""Small reusable network blocks."""
