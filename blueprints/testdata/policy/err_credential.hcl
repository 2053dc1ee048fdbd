policy "x" {
  network "n" {
    endpoint {
      host = credential("HOST")
    }
  }
}

sandbox "s" {
  policy = policy.x
}
