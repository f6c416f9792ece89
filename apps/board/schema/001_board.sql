CREATE TABLE posts (
    id SERIAL PRIMARY KEY,
    title TEXT NOT NULL CHECK (length(title) > 0),
    body TEXT NOT NULL,
    author TEXT NOT NULL CHECK (length(author) > 0),
    created_at TIMESTAMP NOT NULL DEFAULT now()
);
CREATE TABLE comments (
    id SERIAL PRIMARY KEY,
    post_id INTEGER NOT NULL,
    author TEXT NOT NULL CHECK (length(author) > 0),
    body TEXT NOT NULL CHECK (length(body) > 0),
    created_at TIMESTAMP NOT NULL DEFAULT now()
);
-- Author search is an equality lookup: the book's hash index.
CREATE INDEX posts_by_author ON posts USING hash (author);
CREATE INDEX comments_by_post ON comments (post_id);
INSERT INTO posts (title, body, author) VALUES
    ('Welcome to the board', 'This page came through all three tiers: the web tier served the CSS from disk and forwarded the page to the AP tier, which asked the DB tier.', 'tiers');
