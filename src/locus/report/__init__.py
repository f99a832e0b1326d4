"""Charts and the HTML page: tables in, sections of charts and computed sentences out."""
