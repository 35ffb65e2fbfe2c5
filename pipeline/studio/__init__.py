"""The review studio: a storyboard, its plan, lock, store and journal in; web pages,
minimal edits of the storyboard's YAML, and runs, out.

`board` gathers what the pages show (takes, statuses, costs, seams, films), `seams` measures
each frame handed from shot to shot, `edit` writes `pick` and `seed` into the YAML without
touching any other byte, `live` runs the storyboard and watches its files, `files` serves
media by content hash, `app` is the Starlette application and `export` writes the pages as
a folder that opens from `file://`.
"""
