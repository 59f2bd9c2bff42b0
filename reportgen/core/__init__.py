"""What every layer uses: errors, events, text helpers, seeding, the environment, file I/O."""
