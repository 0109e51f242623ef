"""Scripts for the lent GPU machine: one device call of the teacher toolchain, and what comes back."""
