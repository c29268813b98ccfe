
  // only a comment

