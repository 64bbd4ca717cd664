"""What starts work from outside the control plane: the batch directory watcher and systemd notify. They call cofid.service, never cofid.api."""
