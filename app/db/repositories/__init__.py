"""All SQL lives here, one module per domain (`repositories.ml_models`, `repositories.ab_tests`,
...).
Repositories flush when they need an id and never commit."""
