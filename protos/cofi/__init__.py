"""Package ``cofi`` of the protobuf contract; versions live in sub-packages (``v1``)."""
