"""Silver: typed, validated facts parsed from bronze with explicit schemas, plus quarantine."""
