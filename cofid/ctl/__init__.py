"""cofictl, the operators' command line over gRPC (cofi.v1).

main: parsing and dispatch; connect: target, token, channel and errors (shared with the TUI);
output: tables and JSON; commands/: one module per subcommand group.
"""
