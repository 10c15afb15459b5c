# rsna stage
