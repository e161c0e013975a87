"""Talk: the context document of facts about a result, and the question answerer over it."""
