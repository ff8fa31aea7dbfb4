"""Pure functions of the specification (docs/reference/specification.md): deltas, DeltaOne,
contributor addresses and basis points, A/B assignment and statistics. They read no database,
cache, registry or clock; services call them with what they read."""
