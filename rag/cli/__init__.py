"""The command line: commands, the terminal chat, rendering, the doctor."""
