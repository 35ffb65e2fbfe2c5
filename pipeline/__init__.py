"""storyreel: declarative storyboards for AI video."""
