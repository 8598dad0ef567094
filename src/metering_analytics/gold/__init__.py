"""Gold persona tables (sales, operations, customer success): pure DataFrame transforms and their stage."""
