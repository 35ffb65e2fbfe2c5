"""The report phase: plans, graphs and runs in; text for people and JSON for tools, out.

`plan` renders a plan as a table or JSON, `graph` the shot graph as Mermaid or dot,
`progress` a run as it goes (a line per change, or a live table on a terminal) and `seams`
the measured seams and chains.
"""
