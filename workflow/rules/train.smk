# train stage
