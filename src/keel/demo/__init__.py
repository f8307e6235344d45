"""`keel demo`: the whole lifecycle on an example project, narrated, on a real server.

    keel demo [DIR]                        # the flights story
    keel demo --example bikeshare [DIR]    # the regression story
    # DIR is kept for exploring afterwards (default: a new temp folder)

The flights story, on the real 2013 New York flights (shipped in the package), in the embedded
defaults (SQLite and a local artifact folder):

 1. init: the example project; its data contract inferred from January-June.
 2. train v1 on January-June; release gates; a promotion that waits for a second person,
    approved by ben.
 3. a real `keel serve` on loopback; July-September replayed month by month through HTTP,
    labels arriving afterwards through HTTP, `keel monitor` after each month: drift and
    performance alerts with their owners.
 4. retraining triggered by those signals: the source catches up, the contract is reviewed
    for the new months, the challenger is trained on January-September and beats the
    champion on the newest labelled traffic; it goes to canary.
 5. October's traffic split between production and canary; canary analysis passes; the
    promotion to production waits for approval; ben approves.
 6. a deliberately weak model put on canary; November's traffic and labels; canary analysis
    rolls it back on its own.
 7. `keel explain` of one prediction; the audit log verified; where to look next.

The bikeshare story is the same lifecycle as a regression (keel.demo.stories): hourly bike
rentals in Washington DC, v1 trained on 2011 (its time column a plain date), January-March
2012 replayed while demand grows, so rmse rises above the policy's limit and the trigger
fires; the challenger, trained through March, has the lower rmse and goes on canary in April;
the weak model is rolled back in May.

Each step says what it shows and how long it took. `steps` limits the story for tests.

`run` tells the story, `traffic` sends its requests and labels, `stories` holds what differs
between the flights and bikeshare stories.
"""

from keel.demo.run import APPROVER, MODEL, OWNER, STEPS, DemoResult, run_demo

__all__ = [
    "APPROVER",
    "MODEL",
    "OWNER",
    "STEPS",
    "DemoResult",
    "run_demo",
]
