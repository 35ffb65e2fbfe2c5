"""The run phase: a compiled plan and a backend in; shots generated, frames chained, films
stitched, the lock file written and a summary out.

`execute` is the run itself; `scheduler` runs the shot graph against the API in one asyncio
loop, `chain` resolves the images a request needs (parents' frames, local files),
`continuity` grades takes and chooses `frame: best`, `films` stitches each variant's film
and `seams` measures how well each handover holds.
"""
