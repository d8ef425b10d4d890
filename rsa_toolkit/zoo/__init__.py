"""Teacher zoos: the real Taskonomy networks (visualpriors port), generic torch teachers and the embedded mini-zoo."""
