"""Hand-written material for the built-in ``writing`` route (see build_builtin_routes.py)."""

REQUESTS = [
    "write a short email to my landlord",
    "summarise this article in three sentences",
    "draft a polite email asking my manager for a day off next friday",
    "write a cover letter for a junior data analyst position",
    "proofread my paragraph and fix the grammar",
    "make this message sound more professional",
    "write a poem about autumn rain",
    "write a short story about a robot who learns to paint",
    "give me a catchy slogan for a bakery",
    "write a product description for noise-cancelling headphones",
    "draft a LinkedIn post announcing my new job",
    "rewrite this in plain english for a 12 year old",
    "write a toast for my best friend's wedding",
    "compose a thank-you note to my child's teacher",
    "write an essay on the importance of biodiversity",
    "turn these bullet points into a paragraph",
    "shorten this to under 100 words",
    "write a complaint letter to an airline about lost luggage",
    "write a blog post about learning to cook as an adult",
    "translate this paragraph into french",
    "write a haiku about the ocean",
    "help me write a eulogy for my grandfather",
    "edit my personal statement for a master's application",
    "write the opening scene of a mystery novel set in venice",
    "give me a better title for my article",
    "rephrase this sentence so it's less passive",
    "write a resignation letter that keeps things friendly",
    "draft a press release for our product launch",
    "write a speech for a high school graduation",
    "make the tone of this email warmer",
    "write song lyrics about a summer road trip",
    "write a bedtime story for a five year old about a brave turtle",
    "create a newsletter intro for our gardening club",
    "condense these meeting notes into a short summary",
    "write a limerick about a cat who loves lasagna",
    "polish my abstract for a conference submission",
    "write an apology message to a customer whose order arrived late",
    "draft an out-of-office reply",
    "write a job ad for a part-time barista",
    "write a persuasive paragraph arguing for longer school recess",
    "write dialogue between two old friends meeting after twenty years",
    "give me three alternative opening lines for my novel",
    "check this text for spelling mistakes",
    "write a short bio for my website, I'm a freelance photographer",
    "rewrite my resume summary to highlight leadership",
    "write a birthday message for my grandmother turning 90",
    "write a formal letter requesting a refund",
    "make this paragraph more concise",
    "write a tweet announcing our new feature",
    "write a sonnet about lost love",
    "draft talking points for a presentation on our quarterly goals",
    "write an engaging introduction for an article about sleep",
    "summarize the key points of this email thread",
    "write a recommendation letter for a former intern",
    "make my essay conclusion stronger",
    "write a welcome message for new members of our discord server",
    "write a fairy tale that explains why the moon changes shape",
    "fix the punctuation in this text",
    "write a short review of the restaurant we went to last night",
    "paraphrase this paragraph so it doesn't sound copied",
    "write a script for a 60-second explainer video about our app",
    "draft a message to my neighbour about the noise",
    "turn this formal text into a casual instagram caption",
    "write a motivational quote for my team",
    "write a letter to my future self",
    "write an outline for a novel about climate refugees",
    "help me write a wedding invitation",
    "summarise the plot of this chapter I pasted",
    "write a cold email to a potential client",
    "rewrite this to be gender neutral",
    "write a product FAQ section",
    "write a short horror story that fits in two sentences",
    "write a sympathy card message",
    "improve the flow of my paragraph",
    "rewrite this explanation of black holes so a ten year old understands it",
    "simplify this paragraph about inflation for a general audience",
    "make this paragraph about the immune system easier to read",
    "write a jingle for a car wash",
    "write a rhyme I can put on a birthday card",
    "write a chant for our football team",
    "write a short skit for a school assembly about recycling",
    "turn my notes into a project update email: budget on track, two hires delayed, launch in june",
    "write a creative description of a sunset over the desert",
]

WITH_TEXT = [
    "proofread this:\n\n{doc}",
    "summarise the following in two sentences\n{doc}",
    "{doc}\n\nmake this sound more formal",
    "tl;dr please\n\n{doc}",
    "rewrite this for a general audience:\n{doc}",
    "{doc}\nshorten this by half",
    "Can you edit this draft? Keep my voice.\n\n{doc}",
    "turn this into a blog post intro\n{doc}",
    "{doc}\n\nfix any grammar mistakes",
    "give this a better structure and a title:\n{doc}",
    "condense these notes into a short update\n- {doc}",
]

# Short requests about a text handed over as the input (``--input draft.txt``), whose words alone lean elsewhere
# ("errors" to code, "how long" to data).
ASKED_OF_TEXT = [
    "give me a one-line gist of this\n{doc}",
    "check this text for typos and mistakes\n\n{doc}",
    "{doc}\n\nany spelling errors?",
    "bullet the key takeaways\n{doc}",
    "how long is this text?\n\n{doc}",
    "translate this into German\n{doc}",
    "make this easier to read\n\n{doc}",
    "{doc}\nwhat do you think of my writing?",
]

# Neighbours: writing vs research (drafting about a topic vs asking about it) and writing vs general.
HARD = [
    "write an essay about the causes of world war one",
    "write a blog post explaining how vaccines work for non-scientists",
    "write a short article on the history of the printing press",
    "write a research paper introduction about microplastics",
    "summarise this study for a newsletter",
    "turn my research notes into a readable report",
    "write a funny story for my friend's birthday",
    "write a joke-filled speech for my dad's retirement party",
    "draft a reply to this message saying I can't make it",
    "write a message to my team thanking them for their hard work",
    "write a literature review section from these sources",
    "write a poem explaining photosynthesis",
    "rewrite this scientific abstract in plain language",
    "write a wikipedia-style paragraph about coral reefs",
    "write a text to my friend asking how she's doing",
    "help me word a difficult conversation with my roommate",
]

DOCUMENTS = [
    "Our team has spent the last quarter rebuilding the onboarding flow. New users now see a three-step guide "
    "instead of a long form, and early numbers suggest more of them finish setup. We also heard from support that "
    "fewer people write in confused about billing. There is still work to do on mobile, where the guide overlaps the "
    "keyboard, and we plan to fix that before the holidays.",
    "The city council met on Tuesday to discuss the proposed bike lanes on Main Street. Residents were divided: "
    "shop owners worried about losing parking, while parents argued that safer streets would bring more families "
    "downtown. After two hours of debate the council voted to run a six-month pilot and to collect data on traffic "
    "and sales before making a final decision.",
    "Microplastics are fragments smaller than five millimetres that come from the breakdown of larger plastic items "
    "and from products such as cosmetics. They have been found in oceans, soil, drinking water and human blood. "
    "Laboratory studies show inflammation in cells exposed to high doses, but researchers caution that the doses used "
    "are often far higher than typical human exposure, and long-term effects remain uncertain.",
    "i been working at the company for five years and i think i deserve a raise because i have took on more "
    "responsibility since my colleague left, i now manage the schedule for the whole team and train new hires, "
    "which was not part of my job when i started. i would like to discuss this at our next meeting if possible",
    "In 1440 Johannes Gutenberg developed a press with movable metal type. Within fifty years, printers were working "
    "in more than two hundred European cities, and millions of books had been produced. Historians link the spread "
    "of printing to the Reformation, the rise of vernacular literature and the standardisation of spelling, although "
    "the strength of each link is still debated.",
    "Dear hiring committee, I am writing to apply for the position of assistant editor. I have three years of "
    "experience at a regional newspaper where I edited features, managed freelancers and ran our weekend supplement. "
    "I am organised, calm under deadline pressure, and I care about clear writing.",
    "The results of the pilot were mixed. Attendance improved in the first month but fell back to previous levels by "
    "the third. Teachers reported that students liked the later start time, yet several parents said it made their "
    "mornings harder. The board will review the full data in September before deciding whether to continue.",
    "Remote work became widespread in 2020. Surveys since then report higher satisfaction among employees who can "
    "choose where to work, while managers voice concerns about mentoring and team cohesion. Productivity studies "
    "disagree, partly because they measure different things, from output per hour to promotion rates.",
]
