"""Live rooms: the async layer that runs the pure ``crdt.room.Room`` through the ports."""
