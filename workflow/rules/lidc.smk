# lidc stage
