"""cofictl subcommands, one module per group."""
