"""The commands, one module per group; registered on the app in oppcli.cli."""
